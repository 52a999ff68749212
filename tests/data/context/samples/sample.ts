import { Logger } from "./logger";
import * as fs from "fs";

export interface Options {
  verbose: boolean;
}

export type Level = "info" | "warn";

export class Service {
  private logger: Logger;

  constructor(private options: Options) {
    this.logger = new Logger();
  }

  run(level: Level): void {
    this.logger.log(level, fs.existsSync("x"));
  }
}

export function createService(options: Options): Service {
  return new Service(options);
}
