package config

// The reference section of docs/configuration.md is config/reference.yaml
// rendered; TestConfigurationPage checks it, and with -update rewrites it.
//go:generate go test -run TestConfigurationPage -update .
