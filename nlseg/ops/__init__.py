"""Pure tensor math (no mm* imports): attention kernels, affinities, matrix
decompositions, graph operators and solvers."""
