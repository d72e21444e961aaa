// ember: include this to get the whole framework API.
#pragma once

#include "ember/autograd/engine.h"
#include "ember/autograd/grad_mode.h"
#include "ember/autograd/gradcheck.h"
#include "ember/core/error.h"
#include "ember/core/random.h"
#include "ember/core/tensor.h"
#include "ember/ops/ops.h"
#include "ember/io/safetensors.h"
