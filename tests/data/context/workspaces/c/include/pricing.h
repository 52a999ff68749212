#ifndef PRICING_H
#define PRICING_H

/* Price after taking percent off. */
double apply_discount(double price, double percent);

#endif
