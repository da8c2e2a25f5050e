/** imagepe serve: a deployment network from a folder (DHCP or proxyDHCP and TFTP by dnsmasq, HTTP by express). */
export * from './server.js';
export * from './machines.js';
export * from './dnsmasq-config.js';
export * from './dnsmasq-log.js';
export * from './dhcp-probe.js';
export * from './boot-script.js';
export * from './mac.js';
export { createHttpSite, listenHttp, parseEventsBody, parseReportBody, type HttpSiteOptions, type HttpListener } from './http.js';
export { findServedInterface, type ServedInterface } from './interfaces.js';
