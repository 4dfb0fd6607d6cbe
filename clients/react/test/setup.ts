// waitFor's patience on a loaded CI machine (2 shared cores): 5 s instead of 1 s.
import { configure } from "@testing-library/react";

configure({ asyncUtilTimeout: 5000 });
