#pragma once
// lipkit: 1-Lipschitz neural networks on LibTorch. Umbrella header.

#include "lipkit/layers/activations.h"
#include "lipkit/layers/aol.h"
#include "lipkit/layers/conv_adjoint.h"
#include "lipkit/layers/cpl.h"
#include "lipkit/layers/gram.h"
#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/orthogonal.h"
#include "lipkit/layers/sll.h"
#include "lipkit/layers/spectral.h"
#include "lipkit/layers/structure.h"
#include "lipkit/lipschitz/bounds.h"
#include "lipkit/lipschitz/exact_norm.h"
#include "lipkit/lipschitz/gram_iteration.h"
#include "lipkit/lipschitz/power_iteration.h"
#include "lipkit/runtime.h"
