"""Testing aids that ship with the package: a random OpenFLAM checkpoint in the Hugging
Face cache layout (right shapes, random weights), so the real loading code runs offline."""
