package api

import "strings"

// checkLabel refuses an empty or blank label, at create and at update: a
// label is how an operator tells connections apart. The refusal is a 400
// invalid_request naming the field "label".
func checkLabel(label *string) error {
	if strings.TrimSpace(*label) == "" {
		return invalid("label", "label must not be empty or blank")
	}
	return nil
}
