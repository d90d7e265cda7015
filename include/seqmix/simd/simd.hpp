#pragma once
#include "blas1.hpp"
#include "exp.hpp"
#include "vec.hpp"
