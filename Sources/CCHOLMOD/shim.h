// CHOLMOD (SuiteSparse) from Debian's libsuitesparse-dev.
#pragma once
#include <suitesparse/cholmod.h>
