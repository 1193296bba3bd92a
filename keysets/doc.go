// Package keysets creates, loads, rotates and describes the Tink AEAD keyset
// that encrypts every stored connection credential.
//
// # What a keyset is here
//
// A keyset is a Tink keyset of AES256_GCM keys with Tink's output prefix: one
// key is primary and encrypts everything new; every enabled key decrypts.
// Each ciphertext starts with a 5-byte prefix (0x01 and the big-endian key
// id) so Tink routes it to the key that made it, and [KeyIDOf] lets a rewrap
// job see which credentials still sit under an older key. A loaded [Keyset]
// holds one cached AEAD primitive ([Keyset.AEAD]); building it costs a few
// microseconds, so callers load once and share the value (it is immutable and
// safe for concurrent use).
//
// # The file and its key-encryption key (KEK)
//
// The keyset file is Tink's JSON EncryptedKeyset: the serialized keyset
// encrypted under a KEK with associated data "connhost-keyset-v1", next to
// Tink's unencrypted KeysetInfo (key ids, statuses and type URLs — never key
// material). The format is the one tinkey and every other Tink
// implementation read. KEK sources:
//
//   - [KEKFromEnv]: an environment variable (conventionally [DefaultKEKEnv],
//     CONNHOST_KEK) holding the base64 of exactly 32 bytes;
//   - [KEKFromFile]: a file holding the base64 of exactly 32 bytes; refused
//     if group or others have any permission on it;
//   - [KEKFromURI]: a KMS key URI resolved through Tink's KMS client registry
//     (registry.GetKMSClient). The caller registers its KMS client (for
//     example gcpkms or awskms) at start-up; this package registers nothing.
//
// Env and file KEKs are used as raw AES-256-GCM keys. [GenerateKEK] makes a
// fresh one and [WriteKEKFile] stores it with mode 0600 (for
// `connhost keyset init`). A wrong KEK is reported as a *[DecryptError]
// (errors.Is [ErrWrongKEK]); no error of this package ever carries key bytes,
// a KEK value or a full KMS URI (fake and some real KMS URIs embed secrets, so
// only the scheme is shown).
//
// # Dev mode
//
// A cleartext keyset is allowed only when the caller opts in explicitly with
// [Cleartext] — the embedded default for local development. The file is still
// written 0600 and every load (and every create, rotate or disable, which
// load too) logs a loud warning through the configured hclog logger. A
// cleartext file met by an encrypted configuration is refused
// ([ErrCleartextNotAllowed]) rather than silently accepted, and an encrypted
// file met by dev mode is refused too ([ErrKEKRequired]), without the
// warning. [Encrypt] turns a cleartext keyset into an encrypted one in
// place, keeping its keys (`connhost keyset encrypt`).
//
// # File safety
//
// Keyset and KEK files that group or others can read or write are refused
// with a *[PermissionError] naming the path and mode (never the contents).
// Every write is atomic: a 0600 temporary file in the same directory,
// fsync, rename, fsync of the directory. [Create] never overwrites an
// existing file ([ErrExists]). Read-modify-write operations ([Rotate],
// [Disable], [Enable], [Encrypt]) hold an advisory lock on "<path>.lock" so two
// concurrent rotations cannot lose a key, and they decrypt what they are about
// to write before replacing the old file, so a KEK that can encrypt but not
// decrypt (a half-granted KMS key) cannot leave an unreadable keyset behind.
//
// # Rotation workflow
//
//  1. [Rotate] adds a fresh AES256_GCM key and makes it primary. Old keys stay
//     enabled, so every stored ciphertext still decrypts; new encryptions use
//     the new key. Running processes pick it up when they next [Load].
//  2. Rewrap: the host re-encrypts every stored credential whose
//     [KeyIDOf] differs from [Keyset.PrimaryKeyID].
//  3. [Disable] the old key ids once nothing references them. Ciphertexts
//     still under a disabled key no longer decrypt; [Enable] undoes a
//     premature disable. The primary key can never be disabled.
//     [DisableKey] runs a caller's check (the host counts the credentials
//     still sealed under the key) under the file lock, before the write.
//
// The host audits each step; this package only changes the file.
//
// # Tink module
//
// This package uses github.com/tink-crypto/tink-go/v2, the maintained
// continuation of github.com/google/tink/go (which stopped at v1.7.0).
// Keysets are format-compatible between the two, but the two modules must
// never be linked into one binary: both register the same protobuf types and
// the program panics at start-up.
package keysets
