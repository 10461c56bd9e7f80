"""rmsprop_nb: Numba kernels for the AdaGrad and RMSProp optimizers."""
__version__ = "0.1.0"
