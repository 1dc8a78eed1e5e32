//! Python bindings of yilian (skeleton; being written).
