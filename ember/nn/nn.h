// The nn layer in one include: Module, layers, containers, init, module I/O.
#pragma once

#include "ember/nn/activation.h"
#include "ember/nn/attention.h"
#include "ember/nn/container.h"
#include "ember/nn/copy.h"
#include "ember/nn/dropout.h"
#include "ember/nn/embedding.h"
#include "ember/nn/init.h"
#include "ember/nn/linear.h"
#include "ember/nn/mlp.h"
#include "ember/nn/module.h"
#include "ember/nn/module_io.h"
#include "ember/nn/norm.h"
