#pragma once
// lipkit: 1-Lipschitz neural networks on LibTorch. Umbrella header of the layer library and its
// bounds (certify/, train/ and data/ have their own headers).

#include "lipkit/linalg/conv_adjoint.h"
#include "lipkit/linalg/exact_norm.h"
#include "lipkit/linalg/gram.h"
#include "lipkit/linalg/gram_iteration.h"
#include "lipkit/linalg/power_iteration.h"
#include "lipkit/layers/activations.h"
#include "lipkit/layers/aol.h"
#include "lipkit/layers/cpl.h"
#include "lipkit/layers/linf_dist.h"
#include "lipkit/layers/lipschitz_layer.h"
#include "lipkit/layers/mean_shift.h"
#include "lipkit/layers/orthogonal.h"
#include "lipkit/layers/sll.h"
#include "lipkit/layers/sortnet.h"
#include "lipkit/layers/spectral.h"
#include "lipkit/layers/spline.h"
#include "lipkit/layers/structure.h"
#include "lipkit/kernels/dist.h"
#include "lipkit/lipschitz/bounds.h"
#include "lipkit/runtime.h"
