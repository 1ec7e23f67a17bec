/** Imports every model family so that they register (`getModelFamily(name)`). */
import "./abinet/mod.ts";
import "./conclr/mod.ts";
import "./parseq/mod.ts";
