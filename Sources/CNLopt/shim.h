// NLopt from Debian's libnlopt-dev (BOBYQA, the optimizer lme4 and MixedModels.jl use).
#pragma once
#include <nlopt.h>
