"""Code generated from sdk/proto/plugin.proto by `make proto`. Do not edit."""
