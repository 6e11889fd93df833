//! Station core: recording, duplicate rule, store safety, CLI.
