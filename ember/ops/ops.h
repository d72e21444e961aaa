// The public op API in one include.
#pragma once

#include "ember/ops/creation.h"
#include "ember/ops/elementwise.h"
#include "ember/ops/index_ops.h"
#include "ember/ops/linalg.h"
#include "ember/ops/nn_ops.h"
#include "ember/ops/random_ops.h"
#include "ember/ops/reduce.h"
#include "ember/ops/shape_ops.h"
