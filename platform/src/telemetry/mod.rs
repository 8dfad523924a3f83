//! (being written)
pub mod propagation;
