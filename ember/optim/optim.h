// The optim layer in one include: optimizers, schedules, clipping.
#pragma once

#include "ember/optim/adamw.h"
#include "ember/optim/clip.h"
#include "ember/optim/fused_updates.h"
#include "ember/optim/optimizer.h"
#include "ember/optim/param_groups.h"
#include "ember/optim/schedule.h"
#include "ember/optim/sgd.h"
