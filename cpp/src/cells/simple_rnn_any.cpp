// The runtime-switched activation path of simple_rnn.cpp (see any_activation.hpp).
#define RNNKIT_ANY_ACTIVATION_TU 1
#include "simple_rnn.cpp"
