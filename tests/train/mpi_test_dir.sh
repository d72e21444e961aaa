# Sourced by the mpirun shell tests, whose arguments are MPIEXEC EMBER_BINARY
# WORK_DIR: sets $mpirun and $ember (an absolute path), starts in an emptied
# WORK_DIR, and exports what the ranks need here (one OpenMP thread each: the
# machine has few cores; mpirun allowed to run as root).
mpirun=$1
ember=$(realpath "$2")
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
