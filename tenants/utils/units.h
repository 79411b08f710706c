/* Unit tables and conversion for the utils tenant's convert_units tool. */
#ifndef UTILS_UNITS_H
#define UTILS_UNITS_H

#include "smcp.h"

/* A unit: base = value * factor + offset, in its category's base unit (m, kg, K, byte). */
typedef struct unit {
    const char *names[4]; /* canonical name first, then aliases; matched case-insensitively */
    const char *category;
    double factor;
    double offset;
} unit;

/* The unit called name (any alias, ASCII case-insensitive), or NULL. */
const unit *unit_find(const char *name);

/* Converts value from one unit to another of the same category. On failure returns false and
 * sets *err to a sentence explaining why (unknown unit, different categories, below absolute
 * zero); *err is NULL when a unit is unknown, so the caller can list the known ones. */
bool unit_convert(double value, const unit *from, const unit *to, double *out, const char **err);

/* Appends "length: m, km, ...; mass: ..." to b. */
void units_describe(smcp_buf *b);

#endif
