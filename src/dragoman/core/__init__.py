"""The neutral model every dialect translates to and from. Imports nothing of dragoman."""

from .capabilities import Capabilities
from .collect import (
    Collector,
    acollect,
    collect,
    events_of,
    part_events,
)
from .content import (
    CacheControl,
    Citation,
    File,
    Image,
    Opaque,
    Part,
    RedactedThinking,
    Refusal,
    ResultContent,
    SearchResult,
    Text,
    Thinking,
    ToolCall,
    ToolReference,
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
    CitationAdded,
    Finish,
    OpaqueItem,
    Recursion,
    RedactedThinkingBlock,
    RefusalDelta,
    StepStart,
    StreamError,
    StreamEvent,
    TextDelta,
    TextStart,
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
# refusals, message phases, citations, search results, tool references (issue 18)
__all__ += ["Citation", "CitationAdded", "Refusal", "RefusalDelta", "ResultContent",
            "SearchResult", "TextStart", "ToolReference", "part_events"]
