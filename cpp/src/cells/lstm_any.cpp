// The runtime-switched activation path of lstm.cpp (see any_activation.hpp).
#define RNNKIT_ANY_ACTIVATION_TU 1
#include "lstm.cpp"
