#!/bin/sh
exec /app/bin/server "$@"
