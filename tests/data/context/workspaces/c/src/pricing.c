#include "pricing.h"

double apply_discount(double price, double percent) {
    return price * (100.0 - percent) / 100.0;
}
