"""Business tools the supervisor may call: each a JSON schema plus a function over the service layer."""

from app.tools.base import Tool, ToolContext, ToolError
from app.tools.registry import TOOLS, run_tool, tool_schemas

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolError", "run_tool", "tool_schemas"]
