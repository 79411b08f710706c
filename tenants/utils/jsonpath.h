/* Path selection in parsed JSON for the utils tenant's json_query tool. */
#ifndef UTILS_JSONPATH_H
#define UTILS_JSONPATH_H

#include "smcp.h"

/* Follows path through doc. Paths: an optional leading "$", then members as .name or
 * ["name"] (or ['name']) and array elements as [index], where a negative index counts from
 * the end; a path may start with a bare name ("a.b[2].c"). Returns the selected value, or
 * NULL with *err set to a message that names the failing step. */
const smcp_json *json_path(const smcp_json *doc, const char *path, const char **err);

#endif
