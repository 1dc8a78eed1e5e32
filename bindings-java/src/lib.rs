//! JNI bindings of yilian (skeleton; being written).
