// The runtime-switched activation path of gru.cpp (see any_activation.hpp).
#define RNNKIT_ANY_ACTIVATION_TU 1
#include "gru.cpp"
