/**
 * Imports every family's key map so that it registers. A new family adds its map here
 * (`registerKeyMap` in `checkpoints/maps/<family>.ts`; see checkpoints/README.md).
 */
import "./abinet_vision.ts";
import "./conclr_vision.ts";
