/*
 * sluice/sluice.h - everything a plugin author needs: include this one.
 */
#ifndef SLUICE_SLUICE_H
#define SLUICE_SLUICE_H

#include <sluice/abi.h>
#include <sluice/types.h>
#include <sluice/host.h>
#include <sluice/plugin.h>
#include <sluice/source.h>
#include <sluice/transport.h>
#include <sluice/spill.h>
#include <sluice/sink.h>
#include <sluice/record_id.h>

#endif
