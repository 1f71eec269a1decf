"""The neutral model every dialect translates to and from. Imports nothing of dragoman."""

from .capabilities import Capabilities
from .collect import Collector, acollect, collect, events_of
from .content import (
    CacheControl,
    File,
    Image,
    Opaque,
    Part,
    RedactedThinking,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from .errors import (
    AuthenticationFailed,
    BudgetExhausted,
    CircuitOpen,
    Conflict,
    ContextLengthExceeded,
    DragomanError,
    ErrorKind,
    InvalidRequest,
    NotFound,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RequestTooLarge,
    TransportError,
    UpstreamError,
    UpstreamTimeout,
    error_for_kind,
    error_for_status,
)
from .events import (
    AgentToolCall,
    AgentToolResult,
    CandidateDelta,
    Finish,
    OpaqueItem,
    Recursion,
    RedactedThinkingBlock,
    StepStart,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingEnd,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
    VerifierScore,
)
from .ids import new_id
from .request import (
    ChatRequest,
    HostedTool,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    Tool,
    ToolChoice,
)
from .response import ChatResponse, StopReason, Usage
from .validate import validate_request

__all__ = [
    "AgentToolCall", "AgentToolResult", "AuthenticationFailed", "BudgetExhausted",
    "CacheControl", "Capabilities", "ChatRequest", "ChatResponse", "CircuitOpen", "Collector",
    "Conflict", "ContextLengthExceeded", "DragomanError", "ErrorKind", "File", "Finish",
    "HostedTool", "Image", "InvalidRequest", "Message", "NotFound", "Opaque", "OpaqueItem",
    "Overloaded", "Part", "PermissionDenied", "RateLimited", "Reasoning", "RedactedThinking",
    "RedactedThinkingBlock", "RequestTooLarge", "ResponseFormat", "Role", "StepStart",
    "StopReason", "StreamError", "StreamEvent", "Text", "TextDelta", "Thinking",
    "ThinkingDelta", "ThinkingEnd", "Tool", "ToolCall", "ToolCallDelta", "ToolCallEnd",
    "ToolCallStart", "ToolChoice", "ToolResult", "TransportError", "UpstreamError",
    "UpstreamTimeout", "Usage", "UsageUpdate", "acollect", "collect", "error_for_kind",
    "error_for_status", "events_of", "new_id", "validate_request",
]
__all__ += ["CandidateDelta", "Recursion", "VerifierScore"]  # orchestrator events
