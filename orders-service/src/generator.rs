//! (being written by a helper) Generated orders for demos, load and tests.
