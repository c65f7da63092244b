"""aejax: the autoencoder family in JAX/Flax."""
