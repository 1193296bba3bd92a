package keysets

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// VaultScheme is the scheme of key URIs served by HashiCorp Vault's transit
// secrets engine: hcvault://HOST[:PORT]/MOUNT/keys/NAME, for example
// hcvault://vault.example.com:8200/transit/keys/connhost.
const VaultScheme = "hcvault"

// errNoKMSClient reports a KMS URI nothing here can serve.
var errNoKMSClient = errors.New("no KMS client for this URI: connhost serves hcvault:// URIs (HashiCorp Vault transit); use one, or --kek-file or --kek-env instead")

// builtinKMSClient returns the KMS client this package ships for uri, used
// when no client in Tink's registry claims it. Today that is HashiCorp
// Vault's transit engine for hcvault:// URIs.
func builtinKMSClient(uri string) (registry.KMSClient, error) {
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, VaultScheme) || u.Host == "" {
		return nil, errNoKMSClient
	}
	return vaultKMSClient(uri, u.Host)
}

// vaultKMSClient talks to the Vault server at host over HTTPS, unless
// VAULT_ADDR names another address (a proxy, an agent, plain HTTP in a
// test). The rest of the Vault client's usual environment applies:
// VAULT_TOKEN (required), VAULT_CACERT, VAULT_CLIENT_CERT, VAULT_NAMESPACE…
// The token is read here, at load time, and never logged or echoed.
func vaultKMSClient(uri, host string) (registry.KMSClient, error) {
	cfg := vault.DefaultConfig() // reads VAULT_ADDR, VAULT_CACERT, … from the environment
	if cfg.Error != nil {
		return nil, errors.New("Vault client configuration from the environment: " + cfg.Error.Error())
	}
	if os.Getenv(vault.EnvVaultAddress) == "" {
		cfg.Address = "https://" + host
	}
	client, err := vault.NewClient(cfg) // reads VAULT_TOKEN
	if err != nil {
		return nil, errors.New("Vault client: " + err.Error())
	}
	if client.Token() == "" {
		return nil, errors.New("VAULT_TOKEN is not set: the Vault transit KEK needs a token allowed to encrypt and decrypt with the key")
	}
	c, err := hcvault.NewClientWithAEADOptions(uri, client.Logical())
	if err != nil {
		return nil, err
	}
	return vaultClient{c}, nil
}

// vaultClient hands out AEADs whose errors are one readable line.
type vaultClient struct{ registry.KMSClient }

func (c vaultClient) GetAEAD(uri string) (tink.AEAD, error) {
	a, err := c.KMSClient.GetAEAD(uri)
	if err != nil {
		return nil, err
	}
	return vaultAEAD{a}, nil
}

// vaultAEAD turns the Vault client's multi-line response errors into one
// line with the status and Vault's own messages.
type vaultAEAD struct{ tink.AEAD }

func (a vaultAEAD) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	ct, err := a.AEAD.Encrypt(plaintext, associatedData)
	return ct, vaultError(err)
}

func (a vaultAEAD) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	pt, err := a.AEAD.Decrypt(ciphertext, associatedData)
	return pt, vaultError(err)
}

func vaultError(err error) error {
	var re *vault.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := strings.Join(re.Errors, "; ")
	if msg == "" {
		msg = "no error message"
	}
	return fmt.Errorf("Vault answered %d to %s %s: %s", re.StatusCode, re.HTTPMethod, re.URL, msg)
}
