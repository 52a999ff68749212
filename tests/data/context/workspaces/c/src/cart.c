#include <stddef.h>
#include "pricing.h"

double cart_total(const double *items, size_t count, double percent) {
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += items[i];
    return apply_discount(sum, percent);
}
