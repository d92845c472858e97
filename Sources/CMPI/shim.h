// Open MPI from Debian's libopenmpi-dev (include path from pkg-config's ompi-c).
// MPI_COMM_WORLD, MPI_BYTE, MPI_DOUBLE, MPI_SUM and MPI_MAX are macros for the addresses of Open MPI's
// global structures, which Swift cannot import: these functions return them.
#pragma once
#include <mpi.h>

static inline MPI_Comm lmm_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype lmm_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype lmm_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op lmm_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op lmm_mpi_max(void) { return MPI_MAX; }
static inline int lmm_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int lmm_mpi_success(void) { return MPI_SUCCESS; }
static inline void *lmm_mpi_in_place(void) { return MPI_IN_PLACE; }
