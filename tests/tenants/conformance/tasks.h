/* tasks.h - the fixtures of the tasks extension scenarios (SEP-2663; docs/tasks.md): tools that
 * declare task support, escalate into a task when the call may, and run their work in it. */
#ifndef CONFORMANCE_TASKS_H
#define CONFORMANCE_TASKS_H

#include "smcp.h"

void tool_greet(smcp_ctx *ctx, const smcp_json *args);
void tool_slow_compute(smcp_ctx *ctx, const smcp_json *args);
void tool_failing_job(smcp_ctx *ctx, const smcp_json *args);
void tool_protocol_error_job(smcp_ctx *ctx, const smcp_json *args);
void tool_confirm_delete(smcp_ctx *ctx, const smcp_json *args);
void tool_multi_input(smcp_ctx *ctx, const smcp_json *args);
void tool_with_task(smcp_ctx *ctx, const smcp_json *args);

#endif
