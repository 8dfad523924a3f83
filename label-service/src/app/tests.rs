//! Use-case tests with mockall mocks of the ports.
