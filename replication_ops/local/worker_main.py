"""Inside a worker process: a small Lambda Python runtime for one function.

Started by ``workers.py`` as ``python -I worker_main.py`` with the function's folder as working
directory and its environment (the deployed variables plus what Lambda sets). It imports the
handler from ``LAMBDA_TASK_ROOT`` once (the init phase), then serves invocations: one JSON request
per line on standard input, one JSON response per line on the file descriptor named in
``_LOCAL_RUNTIME_RESPONSE_FD``. Standard output and error are the function's log stream, as in
CloudWatch Logs: the parent copies them to a log file and reads the EMF metric lines.

This file must only use the standard library: the function's own dependencies come from its zip.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Python runtime's context object."""

    def __init__(self, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self._deadline = deadline
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("_LOCAL_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(error: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def main() -> int:
    response = os.fdopen(int(os.environ.pop("_LOCAL_RUNTIME_RESPONSE_FD")), "w", encoding="utf-8")
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    sys.path.insert(0, task_root)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    requests = sys.stdin
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the handler must not read our protocol

    module_name, _, function_name = os.environ.get("_HANDLER", "app.handler").rpartition(".")
    handler = None
    init_error = None
    started = time.time()
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, function_name)
    except Exception as error:
        init_error = _error(error)
        print(json.dumps({"errorMessage": str(error), "errorType": "Runtime.ImportModuleError"}), flush=True)
        traceback.print_exc()
    loaded_from = {
        name: getattr(sys.modules.get(name), "__file__", None) for name in ("replication", module_name)
    }
    response.write(
        json.dumps(
            {
                "ready": True,
                "init_error": init_error,
                "init_seconds": time.time() - started,
                "modules": loaded_from,
            }
        )
        + "\n"
    )
    response.flush()

    for line in requests:
        request = json.loads(line)
        request_id = request["request_id"]
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        begun = time.time()
        reply: dict[str, Any] = {"id": request["id"]}
        if handler is None:
            reply["error"] = init_error or {"errorType": "Runtime.Unknown", "errorMessage": "no handler"}
        else:
            try:
                result = handler(request["event"], LambdaContext(request_id, request["deadline"]))
                reply["result"] = result
            except Exception as error:
                reply["error"] = _error(error)
                print(
                    json.dumps(
                        {
                            "errorMessage": str(error),
                            "errorType": type(error).__name__,
                            "requestId": request_id,
                            "stackTrace": reply["error"]["stackTrace"],
                        }
                    ),
                    flush=True,
                )
        duration = (time.time() - begun) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms", flush=True)
        try:
            text = json.dumps(reply, default=str)
        except (TypeError, ValueError) as error:
            text = json.dumps({"id": request["id"], "error": _error(error)})
        response.write(text + "\n")
        response.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
