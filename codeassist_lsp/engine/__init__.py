"""Model layer: the Engine protocol, the in-process llama.cpp engine and its request scheduler."""
