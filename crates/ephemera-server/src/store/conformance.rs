//! Conformance suite (see sqlite tests).
