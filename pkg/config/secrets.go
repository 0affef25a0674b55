package config

import (
	"fmt"
	"os"
	"strings"
)

// Secrets (SASL and MQTT passwords, webhook secrets) come from a file or
// the environment rather than the config file, which is often readable by
// more people than the secret should be. The file's content is the secret
// (a trailing newline removed); errors name the file, never its content.

// PasswordValue returns the SASL password: inline (or from
// STREAMD_KAFKA_SASL_PASSWORD), or the content of PasswordFile.
func (s KafkaSASL) PasswordValue() (string, error) {
	if s.PasswordFile != "" {
		return readSecretFile(s.PasswordFile)
	}
	return s.Password, nil
}

// readSecretFile reads a secret from a file: its content without the
// trailing newline. The error never quotes the content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the secret file: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
