#pragma once
#include "activation.hpp"
#include "convert.hpp"
#include "blas1.hpp"
#include "exp.hpp"
#include "vec.hpp"
