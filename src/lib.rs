//! frameio-c2c
