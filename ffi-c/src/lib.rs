//! C ABI of yilian (skeleton; being written).
