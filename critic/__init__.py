"""critic: the model side of the art recommendation and critique service.

The collection and its importer (`corpus`), sentence embeddings (`embed`), the style VAE (`vae`),
training and evaluation, the critique writer and the `critic` command line.
"""

__version__ = "0.1.0"
