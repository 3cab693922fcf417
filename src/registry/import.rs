//! Placeholder: registry import (being written).
