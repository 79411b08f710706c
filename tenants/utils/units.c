/*
 * units.c - conversion factors for convert_units. Every unit maps linearly onto its category's
 * base unit (metre, kilogram, kelvin, byte); exact definitions where they exist (the inch is
 * 0.0254 m, the pound 0.45359237 kg), decimal and binary prefixes kept apart for data sizes.
 */
#include "units.h"

static const unit UNITS[] = {
    {{"m", "meter", "metre", "meters"}, "length", 1, 0},
    {{"km", "kilometer", "kilometre", "kilometers"}, "length", 1000, 0},
    {{"cm", "centimeter", "centimetre", "centimeters"}, "length", 0.01, 0},
    {{"mm", "millimeter", "millimetre", "millimeters"}, "length", 0.001, 0},
    {{"um", "micrometer", "micron", "µm"}, "length", 1e-6, 0},
    {{"nm", "nanometer", "nanometre", "nanometers"}, "length", 1e-9, 0},
    {{"in", "inch", "inches", NULL}, "length", 0.0254, 0},
    {{"ft", "foot", "feet", NULL}, "length", 0.3048, 0},
    {{"yd", "yard", "yards", NULL}, "length", 0.9144, 0},
    {{"mi", "mile", "miles", NULL}, "length", 1609.344, 0},
    {{"nmi", "nautical mile", "nautical miles", NULL}, "length", 1852, 0},
    {{"kg", "kilogram", "kilograms", NULL}, "mass", 1, 0},
    {{"g", "gram", "grams", NULL}, "mass", 0.001, 0},
    {{"mg", "milligram", "milligrams", NULL}, "mass", 1e-6, 0},
    {{"t", "tonne", "tonnes", "metric ton"}, "mass", 1000, 0},
    {{"lb", "lbs", "pound", "pounds"}, "mass", 0.45359237, 0},
    {{"oz", "ounce", "ounces", NULL}, "mass", 0.028349523125, 0},
    {{"st", "stone", "stones", NULL}, "mass", 6.35029318, 0},
    {{"C", "celsius", "°C", "degC"}, "temperature", 1, 273.15},
    {{"F", "fahrenheit", "°F", "degF"}, "temperature", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0},
    {{"K", "kelvin", NULL, NULL}, "temperature", 1, 0},
    {{"bit", "bits", NULL, NULL}, "data", 0.125, 0},
    {{"B", "byte", "bytes", NULL}, "data", 1, 0},
    {{"kB", "KB", "kilobyte", "kilobytes"}, "data", 1e3, 0},
    {{"MB", "megabyte", "megabytes", NULL}, "data", 1e6, 0},
    {{"GB", "gigabyte", "gigabytes", NULL}, "data", 1e9, 0},
    {{"TB", "terabyte", "terabytes", NULL}, "data", 1e12, 0},
    {{"KiB", "kibibyte", "kibibytes", NULL}, "data", 1024.0, 0},
    {{"MiB", "mebibyte", "mebibytes", NULL}, "data", 1048576.0, 0},
    {{"GiB", "gibibyte", "gibibytes", NULL}, "data", 1073741824.0, 0},
    {{"TiB", "tebibyte", "tebibytes", NULL}, "data", 1099511627776.0, 0},
};

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

static bool same_name(const char *a, const char *b) {
    for (; *a && lower(*a) == lower(*b); a++, b++) {
    }
    return *a == '\0' && *b == '\0';
}

const unit *unit_find(const char *name) {
    for (size_t i = 0; i < SMCP_COUNT(UNITS); i++) {
        for (size_t k = 0; k < 4 && UNITS[i].names[k] != NULL; k++) {
            if (same_name(UNITS[i].names[k], name)) {
                return &UNITS[i];
            }
        }
    }
    return NULL;
}

bool unit_convert(double value, const unit *from, const unit *to, double *out, const char **err) {
    *err = NULL;
    if (from == NULL || to == NULL) {
        return false;
    }
    if (!smcp_streq(from->category, to->category)) {
        smcp_buf *m = smcp_buf_new(96);
        smcp_buf_puts(m, "cannot convert ");
        smcp_buf_puts(m, from->names[0]);
        smcp_buf_puts(m, " (");
        smcp_buf_puts(m, from->category);
        smcp_buf_puts(m, ") to ");
        smcp_buf_puts(m, to->names[0]);
        smcp_buf_puts(m, " (");
        smcp_buf_puts(m, to->category);
        smcp_buf_puts(m, "): the units measure different things");
        *err = smcp_buf_cstr(m);
        return false;
    }
    double base = value * from->factor + from->offset;
    if (smcp_streq(from->category, "temperature") && base < -1e-9) {
        *err = "that temperature is below absolute zero (0 K, -273.15 C, -459.67 F)";
        return false;
    }
    *out = (base - to->offset) / to->factor;
    return true;
}

void units_describe(smcp_buf *b) {
    const char *category = NULL;
    for (size_t i = 0; i < SMCP_COUNT(UNITS); i++) {
        if (!smcp_streq(category, UNITS[i].category)) {
            if (category != NULL) {
                smcp_buf_puts(b, "; ");
            }
            category = UNITS[i].category;
            smcp_buf_puts(b, category);
            smcp_buf_puts(b, ": ");
        } else {
            smcp_buf_puts(b, ", ");
        }
        smcp_buf_puts(b, UNITS[i].names[0]);
    }
}
